"""Database engine, models, the token vault and the job queue."""
