"""Chapter 7: the Dockerfile, or turning a recipe into image layers.

A Dockerfile is a list of instructions. The parser (lexer.py, parser.py)
turns its text into instructions exactly as Docker's own parser does;
expand.py substitutes variables by Docker's rules; the builder (builder.py,
steps.py) runs each instruction in a container of the layers so far and
stores what changed as a new layer; cache.py remembers each step by a key
chained from its parent's, so a rebuild redoes only what changed.

New here:  the Dockerfile syntax, shell-style word expansion, build caches
Try it:    sudo python3 -m chapters.07_dockerfile build -t hello CONTEXT
"""
