namespace outbox { int adapters_placeholder_symbol = 0; }
