"""How the app is served: workers on one socket, the HTTP protocol, the lean match path."""
