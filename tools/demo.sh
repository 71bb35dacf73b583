#!/bin/sh
# The main job: installs what is missing, builds, starts a local 3-site
# VirtCloud on 127.0.0.1 (three agents replicating with Raft, each applying
# its share to a simulated switch), creates a few clusters from different
# sites, shows them, and leaves the sites running with a line on how to
# talk to them and how to stop them.
#   tools/demo.sh [DIR]        (default /tmp/virtcloud-demo)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/tmp/virtcloud-demo}
"$top/tools/build.sh" "$top/build"
bin=$top/build/tools
if [ -d "$dir" ]; then
    "$bin/virtcloud-launch" --stop "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
fi
# Each site's agent applies its share to a simulated edge switch (the dryrun
# driver) and reports back: clusters turn "ready" once every site did.
"$bin/virtcloud-launch" --sites 3 --dir "$dir" -- --switch dryrun \
    --reconcile-interval 2000
. "$dir/env"
api1=$(echo "$VIRTCLOUD_API" | cut -d, -f1)
api2=$(echo "$VIRTCLOUD_API" | cut -d, -f2)
api3=$(echo "$VIRTCLOUD_API" | cut -d, -f3)
vc() { echo "\$ virtcloud $*"; "$bin/virtcloud" "$@"; echo; }
echo
vc --api "$api1" status
vc --api "$api2" cluster create physics --sites brno,praha --owner alice --lease 8h --request-id slurm:1001
vc --api "$api3" cluster create chemistry --sites brno,plzen --owner bob --image user --request-id slurm:1002
vc --api "$api1" cluster create genomics --sites praha,plzen,brno --owner carol --request-id pbs:77.meta
echo "# the same request id again, at another site: the first answer, nothing new"
vc --api "$api3" cluster create physics --sites brno,praha --owner alice --request-id slurm:1001
vc --api "$api2" cluster extend chemistry --site praha
vc --api "$api3" cluster release genomics
sleep 1
vc --api "$api3" cluster list
vc --api "$api2" cluster show chemistry
vc --api "$api1" site list
echo "The 3 sites keep running. Talk to them:"
echo "  export VIRTCLOUD_API=$VIRTCLOUD_API"
echo "  $bin/virtcloud cluster list"
echo "Stop them:"
echo "  $bin/virtcloud-launch --stop $dir"
