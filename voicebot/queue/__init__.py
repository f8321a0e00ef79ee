"""The agent queue: where calls wait for a live agent, and the registrar agents' softphones use.

model.py the data both sides share (agents' states, a waiting caller, a ring's result, figures);
backend.py QueueBackend, what the rest of the bot uses; base.py the in-memory state and rules both
backends share; local.py LocalQueue (one process); redis_queue.py RedisQueue (several workers
through Redis); factory.py `queue_service(settings)`, the one the settings ask for; registrar.py
the SIP registrar. Nothing here imports the factory, and nothing is imported here."""
