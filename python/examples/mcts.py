"""Monte Carlo tree search (UCB1) over tic-tac-toe whose every node lives in a Helios branch.

The game is a stream; its state (the key-value machine) holds ``board`` (9 cells) and
``turn``. Each tree node is a (branch, version) pair: expanding a node forks a branch at it and
appends the move speculatively (in memory); a rollout forks another branch, plays random moves
to the end and is discarded. After the simulations of a turn, the most visited child's move is
promoted with the critical class (on stable storage when ``promote`` returns), and ``prune``
drops every branch that no longer descends from the new head. The board is read back from the
engine at every step, never kept on the side.

Run: ``python examples/mcts.py [store-dir] [--simulations N]``.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
from dataclasses import dataclass, field

from helios_store import Store, kv_set

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def winner(board: bytes) -> str | None:
    """``"x"``, ``"o"``, ``"draw"`` or ``None`` while the game goes on."""
    for a, b, c in LINES:
        if board[a] != ord(".") and board[a] == board[b] == board[c]:
            return chr(board[a])
    return "draw" if b"." not in board else None


def play(board: bytes, cell: int, player: str) -> list[bytes]:
    """The events of one move: the new board and the next player."""
    new = board[:cell] + player.encode() + board[cell + 1 :]
    return [kv_set(b"board", new), kv_set(b"turn", b"o" if player == "x" else b"x")]


@dataclass
class Node:
    """A tree node: where its state lives in the store, and its statistics."""

    branch: int | None  # None: the durable head of the game stream.
    version: int
    move: int | None = None
    visits: int = 0
    wins: float = 0.0
    children: list[Node] = field(default_factory=list)
    untried: list[int] | None = None


def state(store: Store, game: str, node: Node) -> tuple[bytes, str]:
    view = store.view(game, node.version) if node.branch is None else store.view_branch(
        node.branch, node.version
    )
    return view.get(b"board") or b"", (view.get(b"turn") or b"x").decode()


def fork(store: Store, game: str, node: Node) -> int:
    if node.branch is None:
        return store.fork(game, node.version)
    return store.fork_branch(node.branch, node.version)


def search(store: Store, game: str, root: Node, simulations: int, rng: random.Random) -> Node:
    for _ in range(simulations):
        node, path = root, [root]
        # Selection: UCB1 down fully expanded nodes.
        while True:
            board, turn = state(store, game, node)
            if node.untried is None:
                node.untried = [i for i in range(9) if board[i] == ord(".")]
            if node.untried or winner(board) or not node.children:
                break
            node = max(
                node.children,
                key=lambda c: c.wins / c.visits
                + 1.4 * math.sqrt(math.log(node.visits) / c.visits),
            )
            path.append(node)
        # Expansion: one speculative move in a new branch.
        if node.untried and not winner(board):
            cell = node.untried.pop(rng.randrange(len(node.untried)))
            branch = fork(store, game, node)
            _, last = store.append_branch(branch, play(board, cell, turn))
            child = Node(branch, last, move=cell)
            node.children.append(child)
            node, board, turn = child, *state(store, game, child)
            path.append(node)
        # Rollout: random moves in a throwaway branch.
        rollout = fork(store, game, node)
        while not winner(board):
            cell = rng.choice([i for i in range(9) if board[i] == ord(".")])
            store.append_branch(rollout, play(board, cell, turn))
            board, turn = state(store, game, Node(rollout, store.branch_info(rollout)["head"]))
        store.discard(rollout)
        result = winner(board)
        # Backpropagation: a win for the player who moved into the node.
        for n in path:
            n.visits += 1
            mover = "x" if state(store, game, n)[1] == "o" else "o"
            n.wins += 1.0 if result == mover else 0.5 if result == "draw" else 0.0
    return max(root.children, key=lambda c: c.visits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", help="store directory (default: a temporary one)")
    ap.add_argument("--simulations", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="helios-mcts-")
    rng = random.Random(args.seed)
    game = f"tictactoe-{args.seed}-{rng.randrange(10**9)}"
    with Store(directory) as store:
        store.append(game, [kv_set(b"board", b"........."), kv_set(b"turn", b"x")], expected=0)
        while True:
            head = store.head(game)
            board, turn = state(store, game, Node(None, head))
            if winner(board):
                break
            best = search(store, game, Node(None, head), args.simulations, rng)
            # The decision: the chosen child's branch, promoted durably, the rest pruned.
            appended = store.promote(best.branch, best.version, durability="critical")
            pruned = store.prune(game)
            print(
                f"{turn} plays {best.move} after {best.visits} of {args.simulations} visits "
                f"(version {appended.last}, {pruned} branches pruned, "
                f"{store.branch_stats()['live_branches']} live)"
            )
        board, _ = state(store, game, Node(None, store.head(game)))
        for row in range(3):
            print("   " + " ".join(chr(c) for c in board[row * 3 : row * 3 + 3]))
        print(f"result: {winner(board)}; {store.head(game)} durable events in {directory}")
        metrics = store.metrics()
        print(
            f"speculative appends {metrics['append_speculative']['count']}, "
            f"critical promotions {metrics['promote_critical']['count']} "
            f"(p50 {metrics['promote_critical']['p50'] / 1000:.0f} us)"
        )


if __name__ == "__main__":
    main()
