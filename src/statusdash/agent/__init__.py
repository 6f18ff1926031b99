"""The agent: collectors, spool, push loop. Imports nothing heavy, so the daemon stays small."""
