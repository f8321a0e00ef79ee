"""A received frame's bytes are read straight from pjsua2's vector, and a frame to send written
straight into it (voicebot/telephony/media.py): byte for byte what SWIG's slow conversions give,
and the fast ways are the ones in use here. The real calls in test_phone_line and
test_phone_faults hear and speak through them."""

import pjsua2 as pj
import pytest

from voicebot.audio.format import FRAME_BYTES
from voicebot.telephony import media


def test_the_wheel_s_vectors_are_read_and_written_in_place():
    assert media.frame_bytes is media._bytes_in_place
    assert media.write_frame is media._write_in_place


@pytest.mark.parametrize("data", [b"", b"\x00", bytes(range(256)) * 2 + bytes(128), b"\xff" * FRAME_BYTES * 3])
def test_a_frame_read_in_place_is_byte_for_byte_what_swig_gives(data):
    vector = pj.ByteVector(data)
    assert media.frame_bytes(vector) == bytes(vector) == data


def test_a_media_frame_s_buffer_is_read_as_the_bridge_hands_it_over():
    frame = pj.MediaFrame()
    frame.buf = pj.ByteVector(b"\x01\x02" * (FRAME_BYTES // 2))
    frame.buf.append(7)  # the vector the frame holds, not a copy
    assert media.frame_bytes(frame.buf) == b"\x01\x02" * (FRAME_BYTES // 2) + b"\x07"


@pytest.mark.parametrize("data", [b"", b"\x00", bytes(range(256)) * 2 + bytes(128), b"\xff" * FRAME_BYTES * 3])
def test_a_frame_written_in_place_holds_what_swig_would_have_copied(data):
    frame = pj.MediaFrame()
    frame.buf = pj.ByteVector(b"\x09" * (FRAME_BYTES * 2))  # longer than some: the vector is cut to size
    media.write_frame(frame, data)
    assert bytes(frame.buf) == data and frame.buf.size() == len(data)
