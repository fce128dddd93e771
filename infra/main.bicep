// OrderFunctions in one resource group: a Flex Consumption function app (.NET 10 isolated worker)
// running as a user-assigned managed identity, PostgreSQL Flexible Server with Entra sign-in and the
// built-in PgBouncer, identity-only storage for the host and a WORM container for audit archives,
// Log Analytics + Application Insights, and a private network (the default).
// No secret is generated or stored: the app reaches the database and storage as its identity.
// Deploy: docs/deploy.md.

import { firewallRule } from 'modules/postgres.bicep'

// ---------------------------------------------------------------------------------------------
// General

@description('Short name of the environment (prod, staging, ...); part of the name token and a tag.')
@minLength(1)
@maxLength(16)
param environmentName string

@description('Azure region of every resource; defaults to the resource group\'s. It must offer Flex Consumption.')
param location string = resourceGroup().location

// ---------------------------------------------------------------------------------------------
// Network

@description('private (default): the app joins a virtual network and reaches the database and storage through private endpoints only; none of them has a public endpoint. public: the database and storage accounts keep public endpoints (Entra sign-in only), the database admitting only postgresFirewallRules.')
@allowed([
  'public'
  'private'
])
param networkMode string = 'private'

@description('networkMode public: the only client address ranges the PostgreSQL firewall admits, named by the deployer (e.g. a self-hosted deploy runner, an operator\'s office, a NAT gateway).')
param postgresFirewallRules firewallRule[] = []

@description('networkMode public: also admit any Azure service, every tenant\'s included (rule 0.0.0.0). Off by default and not recommended: use networkMode private. Only for a Flex Consumption app without VNet integration, whose outbound address is not fixed.')
param postgresAllowAzureServices bool = false

@description('networkMode private: address space of the virtual network.')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('networkMode private: subnet the function app integrates with (delegated to Microsoft.App/environments).')
param appSubnetPrefix string = '10.40.0.0/24'

@description('networkMode private: subnet holding the private endpoints.')
param privateEndpointSubnetPrefix string = '10.40.1.0/24'

// ---------------------------------------------------------------------------------------------
// Function app

@description('Browser origins allowed to call the API (CORS), e.g. https://trade.contoso.com: the Function App\'s platform CORS and Host__CORS. Never \'*\'; empty allows no browser frontend.')
param corsAllowedOrigins string[] = []

@description('Most instances the function app scales out to. Each holds its own Npgsql pool; the pool size is derived from this so all of them fit in PgBouncer\'s 5000 client connections.')
@minValue(1)
@maxValue(1000)
param functionMaximumInstanceCount int = 100

@description('Memory of each function app instance in MB.')
@allowed([
  512
  2048
  4096
])
param functionInstanceMemoryMB int = 2048

@description('Days Log Analytics keeps the app\'s telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

// ---------------------------------------------------------------------------------------------
// Caller authentication (Auth__*)

@description('OIDC authority whose discovery document and signing keys validate bearer tokens (Auth__Authority). Defaults to this tenant\'s Microsoft Entra v2.0 endpoint.')
param authAuthority string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'

@description('Expected iss claim of bearer tokens (Auth__Issuer). Defaults to this tenant\'s Microsoft Entra v2.0 issuer.')
param authIssuer string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'

@description('Expected aud claim of bearer tokens (Auth__Audience): for Entra v2 access tokens, the API app registration\'s client id (a GUID).')
@minLength(1)
param authAudience string

@description('Delegated scope a trader\'s token must carry in scp (Auth__RequiredScope): the scope the API app registration exposes. App-only tokens have no scp and are never traders.')
@minLength(1)
param authRequiredScope string = 'Orders.Trade'

// ---------------------------------------------------------------------------------------------
// Database access from the app (Database__*)

@description('Seconds before a database command times out (Database__CommandTimeoutSeconds).')
@minValue(1)
param databaseCommandTimeoutSeconds int = 15

@description('Retries of a database call after a deadlock, serialization failure or dropped connection, 25 ms doubling to 1 s apart (Database__MaxRetries); 8 span about 2-3.5 s, longer than a server restart.')
@minValue(0)
@maxValue(20)
param databaseMaxRetries int = 8

// ---------------------------------------------------------------------------------------------
// Timer jobs and retention (NCRONTAB schedules have six fields: second minute hour day month weekday)

@description('NCRONTAB schedule of the orphan scan (ORPHAN_SCAN_SCHEDULE), in UTC.')
param orphanScanSchedule string = '0 */15 * * * *'

@description('NCRONTAB schedule of the audit retention job (AUDIT_RETENTION_SCHEDULE), in UTC.')
param auditRetentionSchedule string = '0 30 2 * * *'

@description('NCRONTAB schedule of the job that publishes every account\'s chain heads to the write-once archive (CHAIN_HEADS_SCHEDULE), in UTC.')
param chainHeadsSchedule string = '0 5 * * * *'

@description('Minutes an order may stay pending or executing before the orphan scan fails it (Maintenance__OrphanThresholdMinutes).')
@minValue(1)
param orphanThresholdMinutes int = 10

@description('Days balance_audit_log rows stay in the database before they are archived and deleted (Maintenance__AuditLogRetentionDays). 2557 days = 7 years, above the 6 years of SEC 17a-4(a).')
@minValue(2192)
param auditLogRetentionDays int = 2557

@description('Days error_log rows stay in the database before they are archived and deleted (Maintenance__ErrorLogRetentionDays).')
@minValue(1)
param errorLogRetentionDays int = 90

@description('Rows the retention job archives and deletes per batch (Maintenance__RetentionBatchSize).')
@minValue(1)
param retentionBatchSize int = 5000

// ---------------------------------------------------------------------------------------------
// Risk (margin levels are equity / used margin: 1.00 = 100 %; Bicep has no decimals, so they are strings)

@description('Margin level below which an account is flagged as in margin call (Risk__MarginCallLevel), e.g. 1.00 = 100 %.')
param riskMarginCallLevel string = '1.00'

@description('Margin level below which the risk engine liquidates positions, largest loss first, until the level is back (Risk__StopOutLevel); at most the margin call level.')
param riskStopOutLevel string = '0.50'

@description('Queued stop closes or stopped-out accounts the risk engine handles per transaction (Risk__CloseBatchSize).')
@minValue(1)
@maxValue(10000)
param riskCloseBatchSize int = 500

// ---------------------------------------------------------------------------------------------
// Audit archive storage

@description('Days each audit archive blob is immutable after it is written. Archived error_log rows are 90+ days old, so 2192 days (6 years) keeps every archived row at least 6 years from its creation.')
@minValue(1)
@maxValue(146000)
param archiveImmutabilityPeriodDays int = 2192

@description('Locked (default; what SEC 17a-4(f) needs): the release creates the archive container\'s time-based retention policy and locks it (infra/archive-policy.sh), irreversibly. Unlocked: the template writes an unlocked policy, which can be shortened or deleted; allowed only for a test deployment (environmentName starting with test), whose resource group must stay deletable.')
@allowed([
  'Locked'
  'Unlocked'
])
param archiveImmutabilityPolicyState string = 'Locked'

@description('Redundancy of the archive storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param archiveStorageSku string = 'Standard_GRS'

// ---------------------------------------------------------------------------------------------
// PostgreSQL Flexible Server

@description('PostgreSQL major version. CI tests against 15, the oldest supported here.')
@allowed([
  '15'
  '16'
  '17'
])
param postgresVersion string = '16'

@description('Compute SKU of the server.')
param postgresSkuName string = 'Standard_D2ds_v5'

@description('Compute tier of the server. Burstable is not offered: the built-in PgBouncer does not run on it.')
@allowed([
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'GeneralPurpose'

@description('Storage of the server in GB (it grows automatically from there).')
@allowed([
  32
  64
  128
  256
  512
  1024
  2048
  4096
  8192
  16384
  32767
])
param postgresStorageSizeGB int = 128

@description('Days of point-in-time-restore backups (7-35).')
@minValue(7)
@maxValue(35)
param postgresBackupRetentionDays int = 35

@description('True to keep backups geo-redundant. Only takes effect when the server is created.')
param postgresGeoRedundantBackup bool = false

@description('True for a zone-redundant high-availability standby (the region must have availability zones).')
param postgresZoneRedundantHa bool = false

@description('True to also allow password sign-in for postgresAdminLogin. Microsoft Entra sign-in is always on; nothing here needs a password.')
param postgresPasswordAuth bool = false

@description('Local administrator login, only used when postgresPasswordAuth is true.')
param postgresAdminLogin string = 'orders_admin'

@description('Local administrator password, only used when postgresPasswordAuth is true.')
@secure()
param postgresAdminPassword string = ''

@description('Object id of the server\'s Microsoft Entra administrator: the group (recommended), user or service principal that runs migrations.')
@minLength(36)
@maxLength(36)
param postgresEntraAdminObjectId string

@description('Name of the Microsoft Entra administrator: group or service principal display name, or user principal name. Migrations sign in with it as the user name.')
@minLength(1)
param postgresEntraAdminPrincipalName string

@description('Kind of the Microsoft Entra administrator.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param postgresEntraAdminPrincipalType string = 'Group'

@description('Name of the application database.')
param postgresDatabaseName string = 'orders'

// ---------------------------------------------------------------------------------------------
// Names

var token = uniqueString(subscription().id, resourceGroup().id, environmentName)
var tags = {
  application: 'OrderFunctions'
  environment: environmentName
}
var isPrivate = networkMode == 'private'

// Guards a parameter value cannot express: fail() stops the deployment before anything is changed.
var corsOrigins = contains(corsAllowedOrigins, '*')
  ? fail('corsAllowedOrigins lists the browser origins allowed to call the API; \'*\' (any origin) is not allowed.')
  : corsAllowedOrigins
var archivePolicyState = archiveImmutabilityPolicyState == 'Unlocked' && !startsWith(environmentName, 'test')
  ? fail('archiveImmutabilityPolicyState Unlocked is only for a test deployment (environmentName starting with test): production archives need a locked policy.')
  : archiveImmutabilityPolicyState
var names = {
  identity: 'id-orders-${token}'
  workspace: 'log-orders-${token}'
  appInsights: 'appi-orders-${token}'
  hostStorage: 'stfn${token}'
  archiveStorage: 'starc${token}'
  plan: 'plan-orders-${token}'
  functionApp: 'func-orders-${token}'
  postgres: 'psql-orders-${token}'
  vnet: 'vnet-orders-${token}'
}
var deploymentContainerName = 'deployment-package'
var archiveContainerName = 'audit-archive'

// Every instance keeps its own Npgsql pool. PgBouncer admits 5000 client connections
// (pgbouncer.max_client_conn), so instances x pool must stay under it; 100 is Npgsql's default cap.
var npgsqlMaxPoolSize = min(100, 5000 / functionMaximumInstanceCount)

// ---------------------------------------------------------------------------------------------
// Resources

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: tags
    retentionInDays: logRetentionDays
  }
}

module network 'modules/network.bicep' = if (isPrivate) {
  name: 'network'
  params: {
    vnetName: names.vnet
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
  }
}

module hostStorage 'modules/host-storage.bicep' = {
  name: 'host-storage'
  params: {
    name: names.hostStorage
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    appPrincipalId: identity.outputs.principalId
    privateOnly: isPrivate
  }
}

module archiveStorage 'modules/archive-storage.bicep' = {
  name: 'archive-storage'
  params: {
    name: names.archiveStorage
    location: location
    tags: tags
    skuName: archiveStorageSku
    containerName: archiveContainerName
    immutabilityPeriodDays: archiveImmutabilityPeriodDays
    immutabilityPolicyState: archivePolicyState
    appPrincipalId: identity.outputs.principalId
    privateOnly: isPrivate
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    name: names.postgres
    location: location
    tags: tags
    version: postgresVersion
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    storageSizeGB: postgresStorageSizeGB
    backupRetentionDays: postgresBackupRetentionDays
    geoRedundantBackup: postgresGeoRedundantBackup
    zoneRedundantHa: postgresZoneRedundantHa
    passwordAuth: postgresPasswordAuth
    adminLogin: postgresAdminLogin
    adminPassword: postgresAdminPassword
    entraAdminObjectId: postgresEntraAdminObjectId
    entraAdminPrincipalName: postgresEntraAdminPrincipalName
    entraAdminPrincipalType: postgresEntraAdminPrincipalType
    databaseName: postgresDatabaseName
    publicNetworkAccess: !isPrivate
    firewallRules: postgresFirewallRules
    allowAzureServices: postgresAllowAzureServices
  }
}

module postgresEndpoint 'modules/private-endpoint.bicep' = if (isPrivate) {
  name: 'postgres-endpoint'
  params: {
    name: 'pe-${names.postgres}'
    location: location
    tags: tags
    subnetId: network!.outputs.privateEndpointSubnetId
    privateLinkServiceId: postgres.outputs.id
    groupId: 'postgresqlServer'
    privateDnsZoneId: network!.outputs.postgresDnsZoneId
  }
}

module hostBlobEndpoint 'modules/private-endpoint.bicep' = if (isPrivate) {
  name: 'host-blob-endpoint'
  params: {
    name: 'pe-${names.hostStorage}-blob'
    location: location
    tags: tags
    subnetId: network!.outputs.privateEndpointSubnetId
    privateLinkServiceId: hostStorage.outputs.id
    groupId: 'blob'
    privateDnsZoneId: network!.outputs.blobDnsZoneId
  }
}

module archiveBlobEndpoint 'modules/private-endpoint.bicep' = if (isPrivate) {
  name: 'archive-blob-endpoint'
  params: {
    name: 'pe-${names.archiveStorage}-blob'
    location: location
    tags: tags
    subnetId: network!.outputs.privateEndpointSubnetId
    privateLinkServiceId: archiveStorage.outputs.id
    groupId: 'blob'
    privateDnsZoneId: network!.outputs.blobDnsZoneId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    planName: names.plan
    name: names.functionApp
    location: location
    tags: tags
    identityId: identity.outputs.id
    hostBlobEndpoint: hostStorage.outputs.blobEndpoint
    deploymentContainerName: hostStorage.outputs.deploymentContainerName
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    subnetId: isPrivate ? network!.outputs.appSubnetId : ''
    corsAllowedOrigins: corsOrigins
    // Every key of local.settings.sample.json that means something in Azure
    // (tests/OrderFunctions.Infra.Tests checks that none is forgotten).
    appSettings: {
      // Host storage by identity: no connection string, no shared key.
      AzureWebJobsStorage__accountName: hostStorage.outputs.name
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identity.outputs.clientId
      // DefaultAzureCredential (database tokens, archive blobs) picks the user-assigned identity by this.
      AZURE_CLIENT_ID: identity.outputs.clientId
      APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.appInsightsConnectionString
      // Port 6432 is the built-in PgBouncer. No password: the app signs in with an Entra token of its
      // identity, whose name is its database role. No Reset On Close: under transaction pooling the
      // server connection is not the client's to reset.
      Database__ConnectionString: 'Host=${postgres.outputs.fqdn};Port=6432;Database=${postgres.outputs.databaseName};Username=${identity.outputs.name};Ssl Mode=Require;Maximum Pool Size=${npgsqlMaxPoolSize};No Reset On Close=true'
      Database__UseEntraAuthentication: 'true'
      Database__CommandTimeoutSeconds: string(databaseCommandTimeoutSeconds)
      Database__MaxRetries: string(databaseMaxRetries)

      // Tokens come from an OIDC authority; there is no local signing key in Azure.
      Auth__Issuer: authIssuer
      Auth__Audience: authAudience
      Auth__SigningKey: ''
      Auth__Authority: authAuthority
      // Entra's sub is pairwise per application; oid is the user's object id. Trader routes need the scope in scp.
      Auth__TraderIdClaim: 'oid'
      Auth__RequiredScope: authRequiredScope
      Auth__RequireHttpsMetadata: 'true'

      // The platform CORS (siteConfig.cors) answers preflights; the app reads the same origins to expose its headers.
      Host__CORS: join(corsOrigins, ',')

      // The host buffers a request body up to this many bytes before the worker sees it (100 MB by default). The
      // API refuses bodies over 64 KiB itself, with a 413 problem document; the host refuses beyond twice that.
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '131072'

      ORPHAN_SCAN_SCHEDULE: orphanScanSchedule
      AUDIT_RETENTION_SCHEDULE: auditRetentionSchedule
      CHAIN_HEADS_SCHEDULE: chainHeadsSchedule
      Maintenance__OrphanThresholdMinutes: string(orphanThresholdMinutes)
      Maintenance__AuditLogRetentionDays: string(auditLogRetentionDays)
      Maintenance__ErrorLogRetentionDays: string(errorLogRetentionDays)
      Maintenance__RetentionBatchSize: string(retentionBatchSize)

      Risk__MarginCallLevel: riskMarginCallLevel
      Risk__StopOutLevel: riskStopOutLevel
      Risk__CloseBatchSize: string(riskCloseBatchSize)

      // The archive by identity: a service URI instead of a connection string.
      ArchiveStorage__serviceUri: archiveStorage.outputs.blobEndpoint
      ArchiveStorage__ContainerName: archiveStorage.outputs.containerName
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (the deploy workflow reads these)

@description('HTTPS base address of the API (routes are under /api).')
output functionAppUrl string = functionApp.outputs.url

@description('Name of the function app.')
output functionAppName string = functionApp.outputs.name

@description('Name of the Flex Consumption plan.')
output functionPlanName string = names.plan

@description('Name of the app\'s user-assigned managed identity, which is also its PostgreSQL role.')
output appIdentityName string = identity.outputs.name

@description('Client id of the app\'s managed identity.')
output appIdentityClientId string = identity.outputs.clientId

@description('Object (principal) id of the app\'s managed identity.')
output appIdentityPrincipalId string = identity.outputs.principalId

@description('Name of the function host\'s storage account.')
output hostStorageAccountName string = hostStorage.outputs.name

@description('Name of the audit archive storage account.')
output archiveStorageAccountName string = archiveStorage.outputs.name

@description('Name of the audit archive container.')
output archiveContainerName string = archiveStorage.outputs.containerName

@description('Locked: the release must create and lock the archive policy (infra/archive-policy.sh). Unlocked: the template wrote an unlocked one (test deployments only).')
output archiveImmutabilityPolicyState string = archivePolicyState

@description('Days each archive blob is immutable; the period the locked policy must have.')
output archiveImmutabilityPeriodDays int = archiveImmutabilityPeriodDays

@description('Name of the Log Analytics workspace.')
output logAnalyticsWorkspaceName string = monitoring.outputs.workspaceName

@description('Name of the Application Insights component.')
output applicationInsightsName string = monitoring.outputs.appInsightsName

@description('Name of the virtual network (networkMode private), else empty.')
output vnetName string = isPrivate ? network!.outputs.vnetName : ''

@description('Name of the PostgreSQL server.')
output postgresServerName string = postgres.outputs.name

@description('Fully qualified host name of the PostgreSQL server.')
output postgresFqdn string = postgres.outputs.fqdn

@description('Name of the application database.')
output postgresDatabaseName string = postgres.outputs.databaseName

@description('Host migrations connect to.')
output migrationHost string = postgres.outputs.fqdn

@description('Port migrations connect to: PostgreSQL itself, not PgBouncer (6432), because Evolve holds a session-level advisory lock across its transactions.')
output migrationPort int = 5432

@description('Database migrations run in.')
output migrationDatabase string = postgres.outputs.databaseName

@description('User name migrations sign in with: the Entra administrator (password = an Entra access token for oss-rdbms).')
output migrationUsername string = postgres.outputs.entraAdminPrincipalName
