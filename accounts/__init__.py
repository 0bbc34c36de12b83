"""Users and sign-in: registration, JWT with rotation and revocation, preferences.

Imports only Django and DRF; every other app may import it.
"""
