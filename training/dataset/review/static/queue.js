// The review queue's pure logic (no DOM): which pairs the filters keep, where to resume, the counts.
// Entries come from api/index: {i, id, split, n, rel: [predicates], doubt: [reasons], missing?: [sides]}.

export const DECISIONS = ["accept", "reject", "swap"];

export function isDecided(verdict) {
  return DECISIONS.includes(verdict);
}

// filters: {only: "unreviewed"|"doubtful"|"all", split, rel, n}; "" or undefined means any.
// The "only" part is applied once, when the filters change: a pair reviewed afterwards stays in the queue, so
// that previous/undo can come back to it.
export function filterQueue(entries, verdicts, filters) {
  const { only = "all", split = "", rel = "", n = "" } = filters;
  return entries.filter((e) => {
    if (split && e.split !== split) return false;
    if (rel && !e.rel.includes(rel)) return false;
    if (n !== "" && String(e.n) !== String(n)) return false;
    if (only === "unreviewed" && isDecided(verdicts[e.id])) return false;
    if (only === "doubtful" && !(e.doubt.length && !isDecided(verdicts[e.id]))) return false;
    return true;
  }).map((e) => e.i);
}

// Where a returning reviewer continues: the first pair of the queue nobody has looked at, else the first
// skipped one, else the start.
export function resumePosition(queue, entries, verdicts) {
  let skipped = -1;
  for (let pos = 0; pos < queue.length; pos++) {
    const verdict = verdicts[entries[queue[pos]].id];
    if (verdict === undefined || verdict === null) return pos;
    if (skipped < 0 && verdict === "skip") skipped = pos;
  }
  return Math.max(skipped, 0);
}

export function countVerdicts(entries, verdicts) {
  const counts = { accept: 0, reject: 0, swap: 0, skip: 0, unreviewed: 0, total: entries.length };
  for (const e of entries) counts[verdicts[e.id] ?? "unreviewed"] += 1;
  counts.reviewed = counts.accept + counts.reject + counts.swap;
  return counts;
}
