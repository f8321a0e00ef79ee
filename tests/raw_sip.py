"""Hand-written SIP requests over UDP or TCP, for the shapes of messages no polite peer sends:
INVITEs without or with broken SDP, to numbers with parameters, CANCELs and ACKs out of order.
Each request is one transaction (ours to finish: an answered INVITE is ACKed and hung up by the
test, so it never holds one of a worker's four call slots)."""

import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import List, Optional

SDP = ("v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


@dataclass
class Dialog:
    """What one INVITE established (or tried to): enough to send ACK, CANCEL, BYE, re-INVITE."""
    uri: str
    call_id: str
    from_tag: str
    to_tag: str = ""
    cseq: int = 1
    branch: str = ""
    target: str = ""  # the far end's Contact (in-dialog requests go there)
    routes: List[str] = field(default_factory=list)  # Record-Route, reversed (a proxy in between)
    offered: bool = True  # our INVITE carried an SDP offer (else the 200 has it, the ACK answers)
    responses: List[str] = field(default_factory=list)

    @property
    def final(self) -> Optional[str]:
        """The status line of the first final response, if one came."""
        return next((r.split("\r\n", 1)[0] for r in self.responses if not r.startswith("SIP/2.0 1")), None)

    @property
    def code(self) -> Optional[int]:
        return int(self.final.split()[1]) if self.final else None


class RawSip:
    """A socket from `source` to a SIP port on 127.0.0.1; `transport` "udp" or "tcp"."""

    def __init__(self, port: int, transport: str = "udp", source: str = "127.0.0.1"):
        self.port, self.transport = port, transport
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind((source, 0))
        self.source, self.local_port = self.sock.getsockname()
        if transport == "tcp":
            self.sock.connect(("127.0.0.1", port))
        self._buffer = b""
        self.answered: dict = {}  # Call-ID -> the dialog of an answered INVITE not yet hung up

    def close(self) -> None:
        """Hang up what is still up (a failed test must not leave a call in a worker's slot)."""
        for dialog in list(self.answered.values()):
            try:
                self.hang_up(dialog)
            except OSError:
                pass
        self.sock.close()

    def __enter__(self) -> "RawSip":
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def send_bytes(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, ("127.0.0.1", self.port))
        else:
            self.sock.sendall(data)

    def receive(self, timeout: float) -> Optional[str]:
        """One message, or None after `timeout` seconds of nothing."""
        self.sock.settimeout(timeout)
        try:
            if self.transport == "udp":
                return self.sock.recv(65535).decode(errors="replace")
            while True:
                message = self._take_message()
                if message is not None:
                    return message
                chunk = self.sock.recv(65535)
                if not chunk:
                    return None
                self._buffer += chunk
        except (socket.timeout, ConnectionError):
            return None

    def _take_message(self) -> Optional[str]:
        """A whole message from the TCP stream (headers, then Content-Length bytes of body)."""
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        length = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", self._buffer[:head_end], re.M | re.I)
        end = head_end + 4 + (int(length.group(1)) if length else 0)
        if len(self._buffer) < end:
            return None
        message, self._buffer = self._buffer[:end], self._buffer[end:]
        return message.decode(errors="replace")

    def request(self, method: str, dialog: Dialog, body: str = "", content_type: str = "application/sdp",
                branch: str = "", cseq: Optional[int] = None, extra: str = "", in_dialog: bool = False) -> str:
        """Send one request in `dialog` (`in_dialog`: to its target, along its routes); returns
        its branch."""
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
        to = f"<{dialog.uri}>" + (f";tag={dialog.to_tag}" if dialog.to_tag else "")
        uri = dialog.target or dialog.uri if in_dialog else dialog.uri
        if in_dialog:
            extra += "".join(f"Route: {route}\r\n" for route in dialog.routes)
        head = (f"{method} {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/{self.transport.upper()} {self.source}:{self.local_port};branch={branch};rport\r\n"
                f"From: <sip:4512345678@{self.source}>;tag={dialog.from_tag}\r\nTo: {to}\r\n"
                f"Call-ID: {dialog.call_id}\r\nCSeq: {dialog.cseq if cseq is None else cseq} {method}\r\n"
                f"Contact: <sip:probe@{self.source}:{self.local_port};transport={self.transport}>\r\n"
                f"Max-Forwards: 70\r\n{extra}")
        if body:
            head += f"Content-Type: {content_type}\r\n"
        self.send_bytes((head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode())
        return branch

    def collect(self, dialog: Dialog, timeout: float = 3.0, method: str = "INVITE") -> Dialog:
        """Read responses to `method` until a final one (or `timeout` of silence); requests the
        far end sends meanwhile (a BYE) are answered 200."""
        initial = not dialog.to_tag  # its 2xx sets the route set; a re-INVITE's only the target
        while True:
            message = self.receive(timeout)
            if message is None:
                return dialog
            first = message.split("\r\n", 1)[0]
            if not first.startswith("SIP/2.0"):
                self.answer(message)
                continue
            call_id = re.search(r"^(?:Call-ID|i)\s*:\s*(\S+)", message, re.M | re.I)
            if not re.search(rf"^CSeq:\s*\d+ {method}\s*$", message, re.M | re.I) or (
                    call_id is None or call_id.group(1) != dialog.call_id):
                continue
            dialog.responses.append(message)
            tag = re.search(r"^(?:To|t)\s*:.*;tag=([^;\s>]+)", message, re.M | re.I)
            if tag and not first.startswith("SIP/2.0 100"):
                dialog.to_tag = tag.group(1)
            if first.startswith("SIP/2.0 2") and method == "INVITE":
                self.answered.setdefault(dialog.call_id, dialog)
                contact = re.search(r"^(?:Contact|m)\s*:\s*<?([^>\s;]+(?:;[^>\s]*)?)>?", message, re.M | re.I)
                dialog.target = contact.group(1) if contact else dialog.target
                if initial:
                    dialog.routes = list(reversed(re.findall(r"^Record-Route\s*:\s*(.+?)\s*$", message, re.M | re.I)))
            if not first.startswith("SIP/2.0 1"):
                return dialog

    def answer(self, request: str) -> None:
        """200 OK to a request from the far end (copying its Via, From, To, Call-ID, CSeq)."""
        keep = [line for line in request.split("\r\n")[1:]
                if re.match(r"(Via|v|From|f|To|t|Call-ID|i|CSeq)\s*:", line, re.I)]
        self.send_bytes(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode())

    def dialog(self, number: str, call_id: str = "", uri: str = "") -> Dialog:
        """A dialog to `number`, nothing sent yet."""
        return Dialog(uri or f"sip:{number}@127.0.0.1:{self.port}", call_id or f"{uuid.uuid4().hex}@probe",
                      uuid.uuid4().hex[:10])

    def invite(self, number: str, body: Optional[str] = None, content_type: str = "application/sdp",
               call_id: str = "", timeout: float = 3.0, uri: str = "", wait: bool = True) -> Dialog:
        """An INVITE (SDP offer unless `body` is given; "" for none) and, if `wait`, its responses."""
        dialog = self.dialog(number, call_id, uri)
        body = SDP.format(port=40000) if body is None else body
        dialog.offered = bool(body)
        dialog.branch = self.request("INVITE", dialog, body, content_type)
        return self.collect(dialog, timeout) if wait else dialog

    def ack(self, dialog: Dialog, body: str = "") -> None:
        """ACK a final response: a 2xx in the dialog (new branch), a failure in its transaction.
        Then a pause, as a phone's: through a proxy of several processes (the Kamailio front) a
        request sent at once may overtake the ACK and find the INVITE still pending (491, 500)."""
        if dialog.code and dialog.code >= 300:
            self.request("ACK", dialog, branch=dialog.branch)
        else:
            self.request("ACK", dialog, body, in_dialog=True)
        time.sleep(0.2)

    def hang_up(self, dialog: Dialog) -> Dialog:
        """ACK then BYE an answered INVITE, and its final response."""
        self.answered.pop(dialog.call_id, None)
        self.ack(dialog, "" if dialog.offered else SDP.format(port=40000))
        return self.in_dialog("BYE", dialog)

    def in_dialog(self, method: str, dialog: Dialog, body: str = "", timeout: float = 3.0) -> Dialog:
        """A new request in an established dialog (BYE, re-INVITE) and its responses."""
        dialog.cseq += 1
        sent = Dialog(dialog.uri, dialog.call_id, dialog.from_tag, dialog.to_tag, dialog.cseq,
                      target=dialog.target, routes=dialog.routes)
        sent.branch = self.request(method, sent, body, in_dialog=True)
        return self.collect(sent, timeout, method=method)

