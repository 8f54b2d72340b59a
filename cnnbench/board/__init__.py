"""Runs, their ranking and rendering, and submissions; never trains."""
