// Where the audit-retention job writes its gzipped NDJSON archives before it deletes rows:
// a container under a time-based retention (WORM) policy, the medium SEC 17a-4(f) accepts once
// the policy is locked.
//
// A separate account from the function host's, deliberately:
// - a LOCKED policy makes the account undeletable while the container holds blobs under retention
//   (and while the container exists at all once it expires); the host account must stay
//   disposable (recreate the app, clean up a test environment) without that constraint;
// - the host identity is Blob Data Owner on its own account, which could change access settings;
//   here the app is only Blob Data Contributor on the one container, so it can add archives but
//   the policy makes it unable to overwrite or delete them;
// - its redundancy (geo-replicated) and network rules are chosen for records, not for leases.

@description('Name of the storage account (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the storage account.')
param location string

@description('Tags applied to the storage account.')
param tags object

@description('Redundancy of the archive account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string

@description('Name of the archive container; the app reads it from ArchiveStorage__ContainerName.')
param containerName string

@description('Days each archive blob stays immutable after it is written (time-based retention).')
@minValue(1)
@maxValue(146000)
param immutabilityPeriodDays int

@description('Locked: the release creates and locks the policy (infra/archive-policy.sh; ARM has no lock operation a template can call, and a locked policy only accepts extend), so the template leaves it alone. Unlocked: the template writes an unlocked policy (test deployments).')
@allowed([
  'Locked'
  'Unlocked'
])
param immutabilityPolicyState string

@description('Object (principal) id of the app identity; it gets Storage Blob Data Contributor on the archive container only.')
param appPrincipalId string

@description('True to close the public endpoint (networkMode = private; a private endpoint serves the blob service).')
param privateOnly bool

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Cool'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateOnly ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: privateOnly ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: account
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

// Only for test deployments: an unlocked policy can still be shortened or removed, which SEC 17a-4(f)
// does not accept. Production's policy is created and locked by infra/archive-policy.sh in the release,
// before anything can write an archive.
resource policy 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2025-01-01' = if (immutabilityPolicyState == 'Unlocked') {
  parent: container
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: immutabilityPeriodDays
    // Archives are written once as block blobs; nothing may be appended to them afterwards.
    allowProtectedAppendWrites: false
  }
}

resource appWritesArchives 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: container
  name: guid(container.id, appPrincipalId, storageBlobDataContributor)
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
  }
}

@description('Name of the archive storage account.')
output name string = account.name

@description('Resource id of the archive storage account.')
output id string = account.id

@description('Blob endpoint of the archive account: the app\'s ArchiveStorage__serviceUri.')
output blobEndpoint string = account.properties.primaryEndpoints.blob

@description('Name of the archive container.')
output containerName string = container.name
