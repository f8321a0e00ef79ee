"""The call layer: one owner for a call's state, what it hears and says, and where it goes.

A call's path (telephony is the pjsua adapter only; speech engines sit behind small interfaces):

    telephony.line ──typed events──▶ call.session.CallSession ──▶ dialogue (Rasa)
      (pjsua callbacks)                 │ CallStatus: its state and transitions
    audio.listener ──typed events──▶    │ Speaker: say / interrupt / played_out
                                        │ QueuedCaller: hold music, announcements, agents
                                        ▼
                          Phone (answer, hang up, call an agent, bridge, refer) ◀── telephony.line
"""
