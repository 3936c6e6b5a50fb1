"""The live pygame HUD (the only package that imports pygame)."""
