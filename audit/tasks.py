import logging

from celery import shared_task

from audit.checkpoints import checkpoint_key, checkpoint_write
from audit.verification import (
    VERIFY_CHAIN_TASK,
    audit_verification_run,
    audit_verification_sweep_stale,
)

logger = logging.getLogger(__name__)

# A walk of the whole chain outlasts the default task limits (240 s soft, 300 s hard) past
# about 2.5 million events. These stay below the Redis visibility timeout (3600 s), which
# would otherwise hand a still-running verification to a second worker.
VERIFY_SOFT_TIME_LIMIT = 50 * 60
VERIFY_TIME_LIMIT = 55 * 60


@shared_task(name="audit.write_checkpoint", ignore_result=True)
def audit_write_checkpoint() -> None:
    """Celery beat, daily: sign the chain head into AUDIT_CHECKPOINT_DIR."""
    if checkpoint_key() is None:
        logger.warning("AUDIT_CHECKPOINT_KEY is not set: no signed audit checkpoint written.")
        return
    path = checkpoint_write()
    logger.info("Signed audit checkpoint written to %s", path)


@shared_task(
    name=VERIFY_CHAIN_TASK,
    soft_time_limit=VERIFY_SOFT_TIME_LIMIT,
    time_limit=VERIFY_TIME_LIMIT,
)
def audit_verify_chain(verification_id: str) -> str:
    """Walk the chain for one AuditVerification (started from the Verify page)."""
    return audit_verification_run(verification_id=verification_id)


@shared_task(name="audit.sweep_stale_verifications", ignore_result=True)
def audit_sweep_stale_verifications() -> None:
    """Celery beat: a verification whose worker was lost is shown as failed, not running."""
    if audit_verification_sweep_stale():
        logger.warning("A verification of the audit chain had stopped making progress; failed.")
