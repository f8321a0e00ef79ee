"""What the bot knows: opening hours with holidays and exceptions, office guidance."""
