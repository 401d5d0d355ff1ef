"""QoS profiles, each chosen for what its data needs."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Env protocol: every step matters, but an old step is useless once the next one exists.
STEP = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Transitions: never drop a batch on the way (measured: KEEP_LAST loses messages under load).
TRANSITIONS = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
ACKS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
# Weights: only the newest matters; transient-local so a late or restarted actor gets it at once.
LATEST_WEIGHTS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Operator takeover: the newest command only; staleness is judged by the actor's timeout.
INTERVENTION = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
# Every label counts (unlike a takeover, where only the newest matters): keep a few queued.
EPISODE_LABEL = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Status of the learner and the actors, published reliably (so any reader matches, e.g. `ros2 topic echo`).
STATUS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
# ... but read as a heartbeat best-effort: on a lossy link a reliable reader holds every later status
# back until a lost one is repaired (seconds), which would look like a lost link; a late heartbeat is none.
HEARTBEAT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
