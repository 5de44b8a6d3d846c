"""Tools for the book: the chapter generator and helpers for trying things out."""
