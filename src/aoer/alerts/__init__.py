"""Alerts (DESIGN §13): what a valid rule is, signed webhooks, e-mail, and the delivery loop.

Raising alerts is the store's (`aoer.store.alerts`, inside the recompute's transaction);
this package sends them and checks what users ask for.
"""
