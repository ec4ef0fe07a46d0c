import { describe, expect, test } from 'bun:test';
import { replyText } from './apply';

describe('replies to the gateway', () => {
  const snapshot = {
    release: { kf_id: 'RE_1' },
    tasks: Array.from({ length: 100 }, (_, i) => ({ kf_id: `TA_${i}` })),
  };
  const reply = { status: 201, body: { releaseId: 'RE_1', snapshot } };

  test('a reply within the limit goes whole', () => {
    expect(JSON.parse(replyText(reply, 1024 * 1024))).toEqual(reply);
  });

  test('a reply over the limit goes without its snapshot (the gateway reads the release instead)', () => {
    const text = replyText(reply, 200);
    expect(JSON.parse(text)).toEqual({ status: 201, body: { releaseId: 'RE_1' } });
  });
});
