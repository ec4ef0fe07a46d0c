// Quiet logs in tests unless asked for; every test file builds its own database and NATS prefix.
process.env.LOG_LEVEL ??= 'silent';
