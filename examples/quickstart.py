"""The two-party quick start: run it as `fed run --parties alice,bob examples/quickstart.py`.

With mutual TLS, make certificates once with `fed certs --parties alice,bob --out certs`, then
`fed run --parties alice,bob examples/quickstart.py --tls certs`.
"""

import sys

import fed


@fed.remote
class MyActor:
    def __init__(self, value):
        self.value = value

    def inc(self, num):
        self.value = self.value + num
        return self.value


@fed.remote
def aggregate(val1, val2):
    return val1 + val2


def main(party, tls_dir=None):
    cluster = {
        'alice': {'address': '127.0.0.1:11010'},
        'bob': {'address': '127.0.0.1:11011'},
    }
    tls_config = None
    if tls_dir:
        tls_config = {
            'ca_cert': f'{tls_dir}/ca.crt',
            'cert': f'{tls_dir}/{party}.crt',
            'key': f'{tls_dir}/{party}.key',
        }
    fed.init(address='local', cluster=cluster, party=party, tls_config=tls_config)

    actor_alice = MyActor.party("alice").remote(1)
    actor_bob = MyActor.party("bob").remote(1)

    val_alice = actor_alice.inc.remote(1)
    val_bob = actor_bob.inc.remote(2)

    sum_val_obj = aggregate.party("bob").remote(val_alice, val_bob)
    result = fed.get(sum_val_obj)
    print(f"The result in party {party} is {result}")

    fed.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    assert len(args) in (1, 3) and args[1:2] in ([], ['--tls']), \
        'Please run this script with party [--tls CERTS_DIR].'
    main(args[0], args[2] if len(args) == 3 else None)
