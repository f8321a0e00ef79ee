"""Logging for every voicebot process: to stderr (stdout carries command output such as
`nlu parse` JSON), quiet by default. Rasa logs through structlog, which would otherwise print
debug events to stdout."""

import logging
import sys
import warnings

import structlog

from voicebot.privacy import RedactingFilter, redact_event_dict

NOISY = ("rasa", "rasa_sdk", "tensorflow", "absl", "sanic", "matplotlib", "apscheduler")


def configure(verbose: bool = False) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # callers say their CPR numbers: never in the logs
        handler.addFilter(RedactingFilter())
    for name in NOISY:
        logging.getLogger(name).setLevel(level if verbose else logging.ERROR)
    structlog.configure(
        processors=[structlog.processors.add_log_level, redact_event_dict, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(level if verbose else logging.ERROR),
        cache_logger_on_first_use=True,
    )
    if not verbose:
        # Rasa 3.6's dependencies warn about their own deprecations on every start.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*deprecated.*")
