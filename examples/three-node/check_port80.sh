#!/bin/sh
# Health check for the three-node example: healthy (exit 0) while something listens on
# TCP port 80, failed (exit 1) otherwise.
ss -Htln 'sport = :80' | grep -q .
