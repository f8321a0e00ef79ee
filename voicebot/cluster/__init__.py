"""Several bot workers behind one SIP front (Kamailio's dispatcher)."""
