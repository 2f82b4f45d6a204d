// From a resolved layout to the strategy function that runs it.
import { allgather, doubleRing, ring, type Strategy, tokenring, ulysses, usp } from '../strategy/index.js';
import type { ResolvedLayout } from './layout.js';

export function strategyFor(l: ResolvedLayout): Strategy {
  switch (l.strategy) {
    case 'ring':
      return ring;
    case 'allgather':
      return allgather;
    case 'ulysses':
      return ulysses;
    case 'usp':
      return usp({ ulysses: l.ulysses, ring: l.ring, placement: l.placement });
    case 'double-ring':
      return doubleRing({ inner: l.inner });
    case 'tokenring':
      return tokenring;
  }
}
