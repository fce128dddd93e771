#!/usr/bin/env bash
# Makes the audit archive container's time-based retention (WORM) policy LOCKED with at least the given
# period: creates it if missing, locks it if unlocked, extends it if shorter. Idempotent; the deploy workflow
# runs it after every infrastructure deployment whose archiveImmutabilityPolicyState output is Locked, before
# migrations or the app, so no archive is ever written under an unlocked policy. Locking is irreversible: the
# period can then only be extended, and the account cannot be deleted while it holds retained blobs.
#
#   bash infra/archive-policy.sh <resource group> <storage account> <container> <days>
#
# Needs the Azure CLI, signed in with rights on the storage account's control plane, and jq.
set -euo pipefail

if (($# != 4)); then
    echo "usage: bash infra/archive-policy.sh <resource group> <storage account> <container> <days>" >&2
    exit 2
fi
rg=$1 account=$2 container=$3 days=$4

show() {
    az storage container immutability-policy show --resource-group "$rg" --account-name "$account" \
        --container-name "$container" --output json 2>/dev/null || echo '{}'
}
field() { jq -r "$1" <<<"$policy"; }

policy=$(show)
if [[ $(field '.state // ""') == "" ]]; then
    echo "creating the retention policy of $account/$container: $days days"
    az storage container immutability-policy create --resource-group "$rg" --account-name "$account" \
        --container-name "$container" --period "$days" --allow-protected-append-writes false --output none
    policy=$(show)
fi

if [[ $(field '.state') == "Unlocked" ]]; then
    if (($(field '.immutabilityPeriodSinceCreationInDays') != days)); then
        az storage container immutability-policy create --resource-group "$rg" --account-name "$account" \
            --container-name "$container" --period "$days" --allow-protected-append-writes false \
            --if-match "$(field '.etag')" --output none
        policy=$(show)
    fi
    echo "locking the retention policy of $account/$container ($days days); this cannot be undone"
    az storage container immutability-policy lock --resource-group "$rg" --account-name "$account" \
        --container-name "$container" --if-match "$(field '.etag')" --output none
    policy=$(show)
fi

state=$(field '.state')
period=$(field '.immutabilityPeriodSinceCreationInDays')
if [[ $state != "Locked" ]]; then
    echo "error: the retention policy of $account/$container is '$state', not Locked" >&2
    exit 1
fi
if ((period < days)); then
    echo "extending the locked retention policy of $account/$container from $period to $days days"
    az storage container immutability-policy extend --resource-group "$rg" --account-name "$account" \
        --container-name "$container" --period "$days" --if-match "$(field '.etag')" --output none
elif ((period > days)); then
    echo "warning: the locked policy keeps $period days, more than the $days asked for; a locked policy cannot be shortened" >&2
fi
echo "the retention policy of $account/$container is locked: $(show | jq -r '.immutabilityPeriodSinceCreationInDays') days"
