// Production parameters. Values that differ per tenant or environment come from environment
// variables (the deploy workflow sets them from repository variables; see docs/deploy.md).
// readEnvironmentVariable without a default fails the build when the variable is missing, and a
// value the template does not allow fails it too, so a deployment never goes out with a placeholder.
using 'main.bicep'

param environmentName = readEnvironmentVariable('ORDERS_ENVIRONMENT', 'prod')
// Private by default: no public endpoint on the database or the storage accounts.
param networkMode = readEnvironmentVariable('ORDERS_NETWORK_MODE', 'private')

// Callers' tokens: Microsoft Entra in this tenant (authAuthority/authIssuer default to it).
param authAudience = readEnvironmentVariable('ORDERS_AUTH_AUDIENCE')
param authRequiredScope = 'Orders.Trade'

// Browser frontends allowed to call the API, comma-separated (e.g. https://trade.contoso.com).
var corsOrigins = readEnvironmentVariable('ORDERS_CORS_ALLOWED_ORIGINS', '')
param corsAllowedOrigins = empty(corsOrigins) ? [] : split(corsOrigins, ',')

// The Entra group (or principal) that administers the server and runs migrations.
param postgresEntraAdminObjectId = readEnvironmentVariable('ORDERS_PG_ADMIN_OBJECT_ID')
param postgresEntraAdminPrincipalName = readEnvironmentVariable('ORDERS_PG_ADMIN_NAME')
param postgresEntraAdminPrincipalType = readEnvironmentVariable('ORDERS_PG_ADMIN_TYPE', 'Group')

param postgresVersion = '16'
param postgresSkuName = 'Standard_D2ds_v5'
param postgresSkuTier = 'GeneralPurpose'
param postgresStorageSizeGB = 128
param postgresBackupRetentionDays = 35
param postgresGeoRedundantBackup = true
param postgresZoneRedundantHa = false
param postgresPasswordAuth = false
param postgresDatabaseName = 'orders'
param postgresFirewallRules = []
param postgresAllowAzureServices = false

param functionMaximumInstanceCount = 100
param functionInstanceMemoryMB = 2048
param logRetentionDays = 90

param databaseCommandTimeoutSeconds = 15
param databaseMaxRetries = 8

param orphanScanSchedule = '0 */15 * * * *'
param auditRetentionSchedule = '0 30 2 * * *'
param chainHeadsSchedule = '0 5 * * * *'
param orphanThresholdMinutes = 10
param auditLogRetentionDays = 2557
param errorLogRetentionDays = 90
param retentionBatchSize = 5000

param archiveImmutabilityPeriodDays = 2192
// Locked: SEC 17a-4(f) needs a non-rewriteable, non-erasable medium. Only infra/test.bicepparam unlocks it.
param archiveImmutabilityPolicyState = 'Locked'
param archiveStorageSku = 'Standard_GRS'
