import { defineRole, hostError, name, podmanVersion, versionAtLeast, z } from 'hostctl';

const QUADLET_SINCE = '4.4';

// Podman with Quadlet (podman >= 4.4), its auto-update timer, and the API socket the
// authentik worker mounts.
export const podman = defineRole({
  name: 'podman',
  prefetch: true,
  vars: z.object({
    podman_packages: z.array(name('package')).default(['podman', 'crun', 'netavark', 'aardvark-dns', 'passt']),
  }),
  // Before anything is written on the host: refuse a podman that has no Quadlet.
  async preflight(h) {
    const { version } = await h.fact(podmanVersion);
    if (version !== undefined && !versionAtLeast(version, QUADLET_SINCE)) {
      throw hostError(`podman ${version} on ${h.host} has no Quadlet (needs ${QUADLET_SINCE} or later)`, {
        hint: 'Debian 12 ships podman 4.3.1: upgrade the container to Debian 13 (trixie), or install podman from bookworm-backports',
      });
    }
  },
  async run(h, v) {
    await h.apt({ packages: v.podman_packages });
    await h.service({ name: 'podman-auto-update.timer', enabled: true, state: 'started' });
    await h.service({ name: 'podman.socket', enabled: true, state: 'started' });
  },
});
