"""Provider batches (OpenAI Batch API, Anthropic Message Batches) behind the queue's
guarantees: see `turing.batch.runner` and docs/models.md."""
