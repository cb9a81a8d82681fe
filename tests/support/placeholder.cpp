namespace outbox::test { int placeholder_symbol = 0; }
