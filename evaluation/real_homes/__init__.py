"""Real homes recorded by other people, replayed through the detectors (`eldercare eval home`).

`home.py` describes a home (its registry site, its recorded life as readings, and which
of its devices injected incidents use); one adapter module per recording turns its
files into a `Home`; `evaluate.py` replays each home and its injected incidents.
"""
