// The Flex Consumption plan and the function app: .NET 10 isolated worker, running as the
// user-assigned identity, reading its deployment package from the host storage account.

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the function app (becomes <name>.azurewebsites.net).')
param name string

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app.')
param tags object

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Blob endpoint of the host storage account, ending in a slash.')
param hostBlobEndpoint string

@description('Name of the container Flex Consumption reads deployment packages from.')
param deploymentContainerName string

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Resource id of the subnet to integrate with (delegated to Microsoft.App/environments), or empty for no VNet integration.')
param subnetId string

@description('Browser origins the platform CORS admits (never \'*\'); empty admits none.')
param corsAllowedOrigins string[]

@description('Application settings, name to value.')
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-11-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // The HTTP API is public: callers are authenticated by their JWT, not by network position.
    publicNetworkAccess: 'Enabled'
    virtualNetworkSubnetId: empty(subnetId) ? null : subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      // Preflights and Access-Control-Allow-Origin for these origins only; bearer tokens, no cookies.
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Flex Consumption takes the worker runtime from here; it rejects FUNCTIONS_WORKER_RUNTIME.
      runtime: {
        name: 'dotnet-isolated'
        version: '10.0'
      }
    }
  }

  resource settings 'config' = {
    name: 'appsettings'
    properties: appSettings
  }

  // Deployments authenticate with Entra (azure/login + RBAC); no publishing password exists.
  // (Flex Consumption has no FTP endpoint to close.)
  resource noScmBasicAuth 'basicPublishingCredentialsPolicies' = {
    name: 'scm'
    properties: {
      allow: false
    }
  }
}

@description('Name of the function app.')
output name string = app.name

@description('HTTPS base address of the function app.')
output url string = 'https://${app.properties.defaultHostName}'
