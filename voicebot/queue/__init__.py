"""The agent queue: where calls wait for a live agent, and the registrar agents' softphones use."""
