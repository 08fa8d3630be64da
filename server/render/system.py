"""Screens and lines the engine itself shows, as msgids (English source strings) for the catalogs.

`N_` only marks strings for `pybabel extract`; the renderer translates them at render time.
"""
from __future__ import annotations


def N_(msgid: str) -> str:
    return msgid


SESSION_ENDED = N_("Your session has ended. Please dial again.")
INVALID_CHOICE = N_("Invalid choice.")
TOO_MANY_ATTEMPTS = N_("Too many wrong attempts. Please dial again.")
SERVICE_BUSY = N_("The service is busy. Please try again later.")
SYSTEM_ERROR = N_("Sorry, something went wrong. Please dial again.")
MORE = N_("More")
BACK = N_("Back")
# The first screen of a re-dial after a dropped call (server/bdapps/resume.py).
RESUME_CONTINUE = N_("Continue where you left off")
RESUME_RESTART = N_("Start again")
