"""`kubelite up` / `kubelite down`: a whole cluster on this machine (see up.py)."""
