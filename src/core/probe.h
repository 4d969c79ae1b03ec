// Removal from a linear-probing hash table by backward shift (Knuth, TAOCP
// vol. 3, 6.4 Algorithm R): no tombstones, so probe lengths do not grow with
// churn. The tables that use it (the data plane's flow index, the IDS flow
// index, the DDoS heavy-hitter summary) each keep their own slot layout; the
// part that is easy to get wrong, which entries may move back, is here once.
#pragma once

#include <cstddef>

namespace palisade {

// Empties slot `hole` of a table of n slots: each later entry of its run
// moves back into the hole unless its home slot lies cyclically in
// (hole, entry], and the slot it left becomes the hole. Returns the slot
// left empty at the end, for the caller to clear (its own empty value).
//   used(j):        slot j holds an entry
//   home(j):        the home slot of slot j's entry
//   move(from, to): copies slot `from` into slot `to`
template <class Used, class Home, class Move>
size_t backwardShift(size_t hole, size_t n, Used&& used, Home&& home, Move&& move) {
  for (size_t j = hole;;) {
    j = j + 1 == n ? 0 : j + 1;
    if (j == hole || !used(j)) return hole;  // the run ended (or, in a full table, wrapped)
    const size_t h = home(j);
    const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (stays) continue;
    move(j, hole);
    hole = j;
  }
}

}  // namespace palisade
