// The test deployment: production's shape (private network, Entra, PgBouncer) with the one difference a
// throwaway environment needs. Its archive policy stays UNLOCKED, so the resource group can be deleted;
// the template refuses Unlocked for any environmentName that does not start with 'test'.
// Deploy: az deployment group create -g <test resource group> -f infra/main.bicep -p infra/test.bicepparam
using 'main.bicep'

param environmentName = 'test'
param networkMode = 'private'

param authAudience = readEnvironmentVariable('ORDERS_AUTH_AUDIENCE')
param authRequiredScope = 'Orders.Trade'
var corsOrigins = readEnvironmentVariable('ORDERS_CORS_ALLOWED_ORIGINS', '')
param corsAllowedOrigins = empty(corsOrigins) ? [] : split(corsOrigins, ',')

param postgresEntraAdminObjectId = readEnvironmentVariable('ORDERS_PG_ADMIN_OBJECT_ID')
param postgresEntraAdminPrincipalName = readEnvironmentVariable('ORDERS_PG_ADMIN_NAME')
param postgresEntraAdminPrincipalType = readEnvironmentVariable('ORDERS_PG_ADMIN_TYPE', 'Group')
param postgresAllowAzureServices = false
param postgresGeoRedundantBackup = false
param postgresBackupRetentionDays = 7

param functionMaximumInstanceCount = 10
param archiveStorageSku = 'Standard_LRS'
param archiveImmutabilityPolicyState = 'Unlocked'
