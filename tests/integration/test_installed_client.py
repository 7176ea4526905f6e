"""liblbclient from the installed tree: `cmake --install` to a temporary prefix,
the example compiled through pkg-config against liblbclient.so and against
liblbclient.a (`pkg-config --static`), and both served by a real cluster."""
import os
import subprocess
import unittest

from harness import BIN, ClusterTest

BUILD = os.path.abspath(os.path.join(BIN, ".."))
SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def sanitized():
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return "LBCP_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


class InstalledClient(ClusterTest):
    def test_shared_and_static_link_and_serve(self):
        self.c.start_master()
        slave = self.c.start_slave("slave-a", "zone-a")
        self.c.start_agent("agent-1", "zone-a")
        self.c.wait_master_sees(1)
        extra = "-fsanitize=address,undefined" if sanitized() else ""
        env = dict(self.c.env, LBCP_EXAMPLE_SLAVE=slave.endpoint)
        r = subprocess.run([os.path.join(SRC, "pkg/client/example/install_test.sh"), BUILD, SRC,
                            extra], capture_output=True, text=True, timeout=150, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("example-shared served: assigned: server agent-1", r.stdout)
        self.assertIn("example-static served: assigned: server agent-1", r.stdout)
        # both released their session: nothing left at the agent
        sessions = self.c.lbctl("sessions", "-o", "json")
        self.assertNotIn("install-shared", sessions.stdout)


if __name__ == "__main__":
    unittest.main()
