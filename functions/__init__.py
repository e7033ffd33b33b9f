"""Lambda handlers, one package per entry point. Each is thin: parse the event, call one function in
``mediagen.steps``, return."""
