"""Alerting: rules with a pending duration and a clear threshold, their lifecycle and silences.

``rules`` loads the rules file, ``engine`` is the pure state machine, ``store`` persists alerts,
silences, service health and failed notifications, ``service`` ties them to the running app.
"""
