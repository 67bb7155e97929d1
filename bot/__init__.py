"""aac-bot: the web app, webhooks, CI API, worker and CLI."""
