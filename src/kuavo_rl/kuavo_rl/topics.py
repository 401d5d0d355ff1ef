"""Topic and service names of the stack (one place, so nodes and tests agree)."""
PREFIX = "/kuavo_rl"
OBSERVATION = f"{PREFIX}/env/observation"
ACTION = f"{PREFIX}/env/action"
TRANSITIONS = f"{PREFIX}/transitions"
TRANSITIONS_ACK = f"{PREFIX}/transitions_ack"
POLICY_WEIGHTS = f"{PREFIX}/policy_weights"
INTERVENTION = f"{PREFIX}/intervention"
EPISODE_LABEL = f"{PREFIX}/episode_label"  # the operator: this episode succeeded / failed
LEARNER_STATUS = f"{PREFIX}/learner/status"
ACTOR_STATUS = f"{PREFIX}/actor/status"  # every actor's, told apart by actor_id
SAVE_CHECKPOINT = f"{PREFIX}/learner/save_checkpoint"
CONFIRM_RESET = f"{PREFIX}/env/confirm_reset"  # the operator: the scene is ready for the next episode
