"""Dockyard: a container engine written from scratch in Python, told as a book."""
