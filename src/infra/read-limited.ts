/**
 * Reads a response body as a stream, at most `limit` bytes: past it the read is cancelled (the
 * rest never leaves the socket's buffers) and `tooLarge` is returned. A Content-Length over the
 * limit is refused before anything is read. Errors of the read itself (reset, deadline) propagate.
 */
export async function readLimited(
  res: Response,
  limit: number,
): Promise<{ text: string; tooLarge?: false } | { tooLarge: true; bytes: number }> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {});
    return { tooLarge: true, bytes: declared };
  }
  if (!res.body) return { text: '' };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return { tooLarge: true, bytes: size };
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return { text: new TextDecoder().decode(all) };
}
