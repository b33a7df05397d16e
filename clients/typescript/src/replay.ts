// What a resumable client keeps so that nothing is lost or done twice across
// a lost connection (PROTOCOL.md, "Resume"): the numbered frames it sent
// that the server has not acknowledged, and how many of the server's it
// processed. Numbered frames are requests, responses, events on the stream
// and cancels, counted from the welcome on.

/** Acknowledge after this many of the server's numbered frames (and at each ping and pong). */
const ACK_EVERY = 32n;

/** Most bytes kept for the server; past it the client can no longer resume, as volley's `resume_buffer`. */
const MAX_KEPT = 1 << 20;

export class Replay {
  /** The token that resumes the player, the last the server gave. */
  token: Uint8Array | undefined;
  /** Numbered frames sent since the welcome. */
  sent = 0n;
  /** The server's numbered frames processed since the welcome. */
  received = 0n;
  /** The `received` last told the server. */
  acknowledged = 0n;
  /** Whether the buffer overflowed: no resume is possible any more. */
  broken = false;
  /** Numbered frames the server has not acknowledged, oldest first. */
  private frames: Uint8Array[] = [];
  private bytes = 0;

  /** Keeps a numbered frame until the server acknowledges it. */
  record(frame: Uint8Array): void {
    this.sent++;
    if (this.broken) return;
    this.frames.push(frame);
    this.bytes += frame.length;
    if (this.bytes > MAX_KEPT) {
      this.broken = true;
      this.frames = [];
      this.bytes = 0;
    }
  }

  /** The server processed our first `received`: forget them. False if it claims more than were sent. */
  acknowledgedByServer(received: bigint): boolean {
    if (received > this.sent) return false;
    while (this.sent - BigInt(this.frames.length) < received) {
      this.bytes -= this.frames.shift()!.length;
    }
    return true;
  }

  /** After the server processed our first `received`: the frames to send again, or undefined if that cannot be. */
  after(received: bigint): Uint8Array[] | undefined {
    if (this.broken || received < this.sent - BigInt(this.frames.length)) return undefined;
    if (!this.acknowledgedByServer(received)) return undefined;
    return [...this.frames];
  }

  /** Whether the server should hear how much we processed. */
  get ackDue(): boolean {
    return this.received - this.acknowledged >= ACK_EVERY;
  }
}
