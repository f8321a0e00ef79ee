"""Dialogue: Rasa models per language, custom actions, and the runtime that drives them."""
