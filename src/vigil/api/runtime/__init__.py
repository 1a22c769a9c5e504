"""What one worker holds while it serves: settings, caches, the index service, auth."""
