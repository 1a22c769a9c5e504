"""The /v1 routers: each validates, authorises, then calls the domain and the runtime."""
