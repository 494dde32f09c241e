"""One module per page (or group of pages); each offers `routes(ctx)`."""
