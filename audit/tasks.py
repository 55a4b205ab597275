import logging

from celery import shared_task

from audit.checkpoints import checkpoint_key, checkpoint_write

logger = logging.getLogger(__name__)


@shared_task(name="audit.write_checkpoint", ignore_result=True)
def audit_write_checkpoint() -> None:
    """Celery beat, daily: sign the chain head into AUDIT_CHECKPOINT_DIR."""
    if checkpoint_key() is None:
        logger.warning("AUDIT_CHECKPOINT_KEY is not set: no signed audit checkpoint written.")
        return
    path = checkpoint_write()
    logger.info("Signed audit checkpoint written to %s", path)
