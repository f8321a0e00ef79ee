"""Ways in to the dialogue: the HTTP text channel and the terminal chat (the phone line later)."""
