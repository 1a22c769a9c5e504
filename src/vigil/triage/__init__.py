"""Triage: scan a seizure, match what is known, group the unknown, report."""
